"""Re-labelling on a simulated multi-node Ray cluster; run as a script by tests/test_multinode.py.

    python tests/multinode_relabel.py WORKDIR

It needs a process of its own: ``ray.cluster_utils.Cluster`` starts a head (no CPUs, so
no work runs there) and two worker nodes of one CPU each on this machine, and the test
session already holds its own Ray. Steps:

1. a reference run of the same archive in one process, without Ray
   (``reprocess_archives(..., loaded_bundle=...)``);
2. the job on the cluster; after its first chunk is written one worker node is removed
   (its raylet and workers killed) while the rest of the job runs;
3. if the job failed with the node, a re-run into the same folder (it skips the chunks
   already written) on the node that is left.

It prints one JSON line: the CPU seconds that each worker node's processes spent (work
spread over nodes), whether the job survived the removal by itself, and whether the
stations and events tables equal the reference's (nothing lost or doubled).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import psutil
import pyarrow.compute as pc
import ray
import torch
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from raydisc.config import PreprocessConfig
from raydisc.ensemble import load_bundle, save_bundle
from raydisc.models import build_model, input_shape_of
from raydisc.reprocess import ReprocessConfig, reprocess_archives, sources_from_archive
from raydisc.reprocess.outputs import read_results
from raydisc.synthetic import generate_archive

REGION = "alpine"
EVENTS = 8
ARCH = "waveform_cnn"


def make_bundle(uri: str) -> None:
    config = PreprocessConfig()
    shape = input_shape_of(ARCH, config)
    states = []
    for seed in range(2):
        torch.manual_seed(seed)
        states.append(build_model(ARCH, shape).state_dict())
    save_bundle(uri, architecture=ARCH, hparams={}, input_shape=shape, preprocess_config=config,
                member_state_dicts=states,
                member_metrics=[{"seed": s, "validation_loss": 0.5, "validation_accuracy": 0.5} for s in range(2)])


def raylet_tree_cpu_seconds(node) -> float:
    """CPU seconds of one node's raylet and every process it started (its workers)."""
    raylet = psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    total = 0.0
    for p in [raylet, *raylet.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def sorted_rows(output: str, table: str, keys: list[str]) -> dict:
    rows = read_results(output, table)
    order = pc.sort_indices(rows, sort_keys=[(k, "ascending") for k in keys])
    return rows.take(order).to_pydict()


def tables_equal(a: str, b: str) -> dict[str, bool]:
    result = {}
    for table, keys in (("stations", ["event_id", "network", "station", "location"]), ("events", ["event_id"])):
        left, right = sorted_rows(a, table, keys), sorted_rows(b, table, keys)
        same = left.keys() == right.keys() and len(left[keys[0]]) == len(right[keys[0]]) > 0
        for column in left if same else ():
            x, y = left[column], right[column]
            if x and isinstance(x[0], float):
                same = same and np.allclose(np.array(x, dtype=float), np.array(y, dtype=float),
                                            rtol=0, atol=1e-6, equal_nan=True)
            else:
                same = same and x == y
        result[table] = bool(same)
    return result


def main(workdir: str) -> None:
    work = Path(workdir)
    archive, bundle = str(work / "archive"), str(work / "bundle")
    generate_archive(archive, regions=[REGION], events_per_region=EVENTS, seed=3)
    make_bundle(bundle)
    sources = sources_from_archive(archive, [REGION])
    config = ReprocessConfig(events_per_chunk=1)
    reference = str(work / "reference")
    reprocess_archives(sources, bundle, reference, config, loaded_bundle=load_bundle(bundle))

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR")
    output = str(work / "cluster")
    removed = {"done": False}
    spent = {}

    def remove_one_node(row: dict) -> None:
        if not removed["done"]:
            removed["done"] = True
            spent["removed_node"] = raylet_tree_cpu_seconds(workers[0])
            cluster.remove_node(workers[0], allow_graceful=False)

    survived, rerun_error = True, None
    try:
        reprocess_archives(sources, bundle, output, config, progress=remove_one_node)
    except Exception as error:  # the node's loss may fail the job; the re-run must finish it
        survived = False
        rerun_error = f"{type(error).__name__}: {error}"[:300]
        reprocess_archives(sources, bundle, output, config)
    spent["remaining_node"] = raylet_tree_cpu_seconds(workers[1])
    ray.shutdown()
    cluster.shutdown()
    print(json.dumps({"node_cpu_seconds": spent, "node_removed": removed["done"], "survived_removal": survived,
                      "first_run_error": rerun_error, "equal": tables_equal(reference, output)}))


if __name__ == "__main__":
    main(sys.argv[1])
