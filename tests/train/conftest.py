"""A persistent XLA compilation cache for this test session (a fresh temporary directory).

The train tests run the same tiny programs many times (whole runs, resumed runs, restores,
subprocess runs of `arithlab.main`); with the cache each program compiles once per session,
which more than halves the CPU time of these tests. It is set when pytest collects this
folder, before anything compiles, and exported so that subprocesses share it.
"""

import atexit
import os
import shutil
import tempfile

import jax

_CACHE = tempfile.mkdtemp(prefix="arithlab-test-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
_SETTINGS = {
    "jax_compilation_cache_dir": _CACHE,
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}
for _name, _value in _SETTINGS.items():
  jax.config.update(_name, _value)
  os.environ[_name.upper()] = str(_value)
