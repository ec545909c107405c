import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Prints "crash matrix: N cases run, M passed" at the end of the suite.
pytest_plugins = ["matrix_report"]
