"""Thread helpers of the Eulerian magnification: column chunks and frame blocks.

The thread count is cv2.getNumThreads(), so cv2.setNumThreads(n) limits both OpenCV and these.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

# Columns band-passed per call: 128 frames x 4096 float32 = 2 MB, stays in cache.
COLUMNS_PER_CHUNK = 4096


def for_column_chunks(
    source: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], target: np.ndarray
) -> None:
    """target[:, chunk] = transform(source[:, chunk]) over column chunks, in threads.

    target may be source. Chunks keep the temporaries small (cache, page faults, memory);
    FFTs and matrix products release the GIL, so the threads run in parallel. BLAS is held at
    one thread meanwhile: its own threads would oversubscribe the cores and keep spinning
    into the next stage (measured ~20 % slower). The lock keeps concurrent calls from
    interleaving the save/restore of that process-wide setting.
    """
    n_columns = source.shape[1]
    starts = range(0, n_columns, COLUMNS_PER_CHUNK)

    def run_chunk(start: int) -> None:
        chunk = slice(start, start + COLUMNS_PER_CHUNK)
        target[:, chunk] = transform(np.asarray(source[:, chunk], dtype=np.float32))

    n_threads = min(_thread_count(), len(starts))
    with _BLAS_LIMIT_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        if n_threads == 1:
            for start in starts:
                run_chunk(start)
            return
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run_chunk, starts))


_BLAS_LIMIT_LOCK = threading.Lock()


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded libraries once (~ms), then reused


def for_frame_blocks(work: Callable[[range], None], n_frames: int) -> None:
    """Run work(frame_indices) on contiguous blocks of frames, one block per thread.

    OpenCV releases the GIL, and its own threading does little for the many small levels.
    """
    n_threads = min(_thread_count(), n_frames)
    bounds = np.linspace(0, n_frames, n_threads + 1).astype(int)
    blocks = [range(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    if n_threads == 1:
        work(blocks[0])
        return
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, blocks))


def _thread_count() -> int:
    return max(1, cv2.getNumThreads())
