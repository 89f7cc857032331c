"""Measure the device chipmix runs on and calibrate the catalog from it.

``detect`` finds the device and its catalog chip, ``micro`` / ``collectives`` / ``e2e`` time
kernels, collectives and a training step (``timing`` is how), ``store`` keeps the results in
SQLite, ``fit`` turns them into calibration, ``check`` sets a prediction beside a
measurement, ``runner`` plans and runs suites. torch (the ``chipmix[bench]`` extra) is
imported only inside the functions that need it; nothing outside this package imports it.
"""
