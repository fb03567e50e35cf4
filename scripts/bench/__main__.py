"""`python3 scripts/bench [--quick|--smoke]` runs scripts/bench/run."""
import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'run'), run_name='__main__')
