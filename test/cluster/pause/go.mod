// The test node's sandbox ("pause") program, built into the node's pause image (see ../README.md).
module thanos-sidecar-injector/test/cluster/pause

go 1.24.0
