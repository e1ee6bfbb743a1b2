"""The one place to look for test helpers; tests import them as `from tests.support.x import y`.

Kubernetes and agent objects
- builders: `build_test_pod` / `build_test_node` (raw Kubernetes JSON, cluster-autoscaler's
  BuildTestPod style), `raw_pod` / `raw_node` for the scale-in fold, and the agent's values
  (`pending_pod`, `pool_view`, `pool_node`, `virtual_node`, `ECI_TAINT`).
- decide_requests / scale_in_requests: decide/v1 and scale-in/v1 request bodies and reply readers.
- cloud.fc_events: FC handler inputs (seed request, fake context, FC 3.0 HTTP events, WSGI environs).

Time and waiting
- clocks: `ManualClock` (moves only when told) and `TestClock` (wall time plus an offset).
- waiting: `until` (bounded polling) and `store_until` (re-checked on store changes).
- interleave: `Interleaver` / `Gated`, a deterministic order for concurrent agents' calls.

Emulators, servers and processes
- network: `clear_proxies` (behind the autouse `no_proxies` fixture) and `client_environment`.
- cloud.serving: `serve`, an aiohttp app on 127.0.0.1 with a free port.
- cloud.cloud_apis: raw and agent SDK clients for the emulators, `CsHarness`, `fc_emulator`.
- cloud.memory_pools: `InMemoryPools`, a NodePoolService on the test clock.
- cloud.cloud_doubles: `ScriptedPools`, the FC emulator hosting `functions/`, `cloud_world`.
- cloud.sdk_wire: raw CS calls and SDK-signed headers below the typed models.
- sim_pools: the simulator's node pools (`pool_spec`, `node_pools`, `started`,
  `cluster_with_a_pool`).
- agent_world: `World`, the main loop's simulator + CS emulator + agent clients.
- cluster: cluster in a box, the agent wired from an EmbeddedAck (`agent_config`, `running`).
- processes / dev_process: `python -m functions`, `python -m agent sim serve`, `agent dev`.
- reference: the README's generated configuration and metrics references.
"""
