"""Vector search: the store interface, its FAISS and Milvus backends, and their sync with SQL."""

import logging

# faiss's loader tries the AVX-512 and AVX2 builds first and logs each miss at INFO with the
# ModuleNotFoundError ("No module named 'faiss.swigfaiss_avx512'"): normal for faiss-gpu, which ships
# one generic build, but it reads like a failure at every start. Its warnings still show.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
