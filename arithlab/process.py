"""Process-wide settings that entry points (arithlab.main, arithlab.sweep, benchmarks) make
before any work; library code never changes the whole process. Imports no jax."""

import ctypes
import ctypes.util


def keep_freed_memory() -> bool:
  """Asks glibc (mallopt) to serve every allocation from its heap and never to give freed
  memory back to the kernel, so that each batch's arrays reuse already mapped pages instead of
  page-faulting fresh ones (about a third of data_gen's batch time otherwise, see
  benchmarks/RESULTS.md). False where glibc is not there (nothing changes then)."""
  path = ctypes.util.find_library("c")
  libc = ctypes.CDLL(path) if path else None
  if libc is None or not hasattr(libc, "mallopt"):
    return False
  m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
  return all(libc.mallopt(option, value) == 1 for option, value in (
      (m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30), (m_top_pad, 64 << 20)))
