"""An exclusive lock on a workdir: one run writes into it at a time.

The lock is `<workdir>/lock`, holding "pid host start-time", with an
`fcntl.flock` held on it for the whole run. The kernel drops a flock when its
process dies, however it dies, so a lock file left by a killed run is stale
exactly when nobody holds the flock: the next run takes it over (and logs
whose it was). A second run into a busy workdir fails at once naming the
holder. The file is removed on a clean release.

In a multi-host run only process 0 takes the lock (`acquire_all`) and every
process gets the same decision: the others raise too when process 0 could
not lock.
"""

import fcntl
import os
import socket
import time

import numpy as np
from absl import logging

LOCK_NAME = "lock"


class WorkdirBusyError(RuntimeError):
  """Another live run holds the workdir."""


def _holder(path: str) -> str:
  try:
    with open(path) as f:
      parts = f.read().split()
  except OSError:
    return "another run"
  if len(parts) >= 2:
    when = (time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(float(parts[2])))
            if len(parts) > 2 else "")
    return f"pid {parts[0]} on host {parts[1]}{when}"
  return "another run"


def _busy(workdir: str, path: str) -> WorkdirBusyError:
  return WorkdirBusyError(
      f"workdir {workdir} is in use by {_holder(path)}; wait for that run to finish "
      f"(or stop it), or pass another --workdir")


def _try_flock(fd: int) -> bool:
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except BlockingIOError:
    return False


def check_free(workdir: str) -> None:
  """Fails at once if a live run holds `workdir`; writes nothing.

  Lets a second run stop before it spends time loading data.
  """
  path = os.path.join(workdir, LOCK_NAME)
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return  # No lock file (or no workdir): free as far as we can tell.
  try:
    if not _try_flock(fd):
      raise _busy(workdir, path)
  finally:
    os.close(fd)  # Closing drops the probe's flock.


class Lock:
  """The held lock; `release()` (or process exit) frees it."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_NAME)
    self.fd = None
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      if not _try_flock(fd):
        os.close(fd)
        raise _busy(workdir, self.path)
      # The holder may have released (and unlinked) the file between our open
      # and flock: then we hold a lock on a dead inode; retry on the new file.
      try:
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    old = os.read(fd, 256).decode(errors="replace").split()
    if old:
      logging.warning("Taking over the stale lock of %s in %s (that run is gone)",
                      _holder(self.path), workdir)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode(), 0)
    os.fsync(fd)
    self.fd = fd

  def release(self) -> None:
    if self.fd is None:
      return
    try:
      os.unlink(self.path)  # Unlink while still holding the flock: see __init__.
    except FileNotFoundError:
      pass
    os.close(self.fd)
    self.fd = None


class _NoLock:
  def release(self) -> None:
    pass


def acquire_all(workdir: str, prepare=None):
  """Process 0 locks `workdir` and runs `prepare()`; every process shares the outcome.

  Args:
    workdir: the run's directory (created by process 0).
    prepare: optional callable run by process 0 under the lock (workdir
      checks and first writes); an exception there releases the lock.

  Returns:
    The lock (a no-op object on other processes); release it when done.
  """
  import jax  # Lazy: the lock itself needs no JAX.
  lock, error = _NoLock(), None
  if jax.process_index() == 0:
    try:
      os.makedirs(workdir, exist_ok=True)
      lock = Lock(workdir)
      if prepare is not None:
        prepare()
    except BaseException as e:  # noqa: B036 -- re-raised below, after the broadcast.
      lock.release()
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # Multi-host only.
    failed = int(multihost_utils.broadcast_one_to_all(np.int32(error is not None)))
    if failed and error is None:
      raise WorkdirBusyError(f"process 0 could not take or prepare workdir {workdir} "
                             f"(its error line says why)")
  if error is not None:
    raise error
  return lock
