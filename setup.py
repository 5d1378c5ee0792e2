from setuptools import find_packages, setup

setup(
    name='mmpose-scai',
    version='0.1.0',
    description='SCAI: self-correctable and adaptable inference for MMPose top-down models',
    packages=find_packages(include=['mmpose_scai', 'mmpose_scai.*']),
    include_package_data=True,
    # The `mmpose_scai::` config scope (mmpose_scai/utils/config_scope.py): MMEngine
    # reads <package>/.mim/{configs,model-index.yml}; in the source tree these are links
    # to the repository's configs/ and model-index.yml, in a wheel copies of them.
    package_data={
        'mmpose_scai': [
            '.mim/model-index.yml', '.mim/configs/**/*.py', '.mim/configs/**/*.yml',
            '.mim/configs/**/*.md', '.mim/tools/*.py'
        ]
    },
    python_requires='>=3.8',
    # Loose on purpose: a full CUDA stack (real mmcv, torchvision) keeps its own versions.
    # The pinned CPU stack lives in requirements/cpu.txt and is installed by `make venv`.
    install_requires=['mmengine>=0.10.0', 'mmpose>=1.1.0'],
    extras_require={'tests': ['pytest>=8', 'hypothesis>=6']},
    license='Apache-2.0',
)
