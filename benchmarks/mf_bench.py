def run(*a): raise NotImplementedError
def rows(r): return []
