"""Re-labelling on a simulated multi-node cluster (``ray.cluster_utils.Cluster``): work is
spread over the nodes, and a node removed mid-run loses nothing.

The cluster runs in a subprocess (tests/multinode_relabel.py), since this session holds
its own local Ray.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("multinode_relabel.py")
#: CPU seconds above what an idle node spends (its raylet and a started worker, well under
#: 1 s over the run): a node's processes passing it have imported torch and run chunks.
WORKED_CPU_S = 2.0


def test_node_removed_mid_run_loses_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["node_removed"]
    spent = result["node_cpu_seconds"]
    assert spent["removed_node"] > WORKED_CPU_S and spent["remaining_node"] > WORKED_CPU_S, spent
    # Whether Ray's task retries or the re-run finished the job, the tables are the reference's.
    assert result["equal"] == {"stations": True, "events": True}, result
