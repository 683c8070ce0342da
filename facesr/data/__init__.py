"""facesr.data"""
