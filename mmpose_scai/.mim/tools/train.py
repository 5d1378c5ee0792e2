"""`mim train mmpose_scai <config>`: MMPose's tools/train.py with the plugin imported first."""
import sys

from mmpose_scai.__main__ import main

if __name__ == '__main__':
    main(['train'] + sys.argv[1:])
