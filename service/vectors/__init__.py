"""Vector search: the store interface, its FAISS and Milvus backends, and their sync with SQL."""
