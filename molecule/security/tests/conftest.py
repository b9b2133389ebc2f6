import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# labchecks (shared scenario checks) and the collection itself, as tests/ sees it.
sys.path.insert(0, os.path.join(_HERE, "..", "..", "resources"))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "..", ".collections"))
