"""`mim test mmpose_scai <config>`: MMPose's tools/test.py with the plugin imported first."""
import sys

from mmpose_scai.__main__ import main

if __name__ == '__main__':
    main(['test'] + sys.argv[1:])
