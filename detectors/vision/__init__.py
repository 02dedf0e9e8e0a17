"""Video to people counts and motion, on the camera's own machine.

Plain functions and classes over numpy frames: counters (``hog``, ``density``, ``dnn``) behind
one interface, dense optical flow per zone, and Helbing's crowd pressure. Nothing here talks to
Kafka; ``streams.edge.camera`` wires these to readings.
"""
