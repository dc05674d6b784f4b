"""Process-wide locks for components that load local models from worker threads."""

from __future__ import annotations

import threading

#: Held while torch and transformers are imported and local weights are loaded. Backends and
#: the embedding encoder load from ``asyncio.to_thread`` workers, and transformers' lazily
#: initialised module is not safe to import from two threads at once (one of them fails with
#: "cannot import name 'AutoModel' from 'transformers'").
MODEL_LOAD_LOCK = threading.RLock()
