import ctypes, os
def test_library_loads_and_reports_version():
    lib = ctypes.CDLL(os.environ["SWITCHOVER_LIB"])
    lib.swo_version.restype = ctypes.c_char_p
    assert lib.swo_version() == b"0.1.0"
