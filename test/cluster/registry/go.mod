// Module used only to build the OCI registry of the node tests' install scenario (see ../README.md):
// go-containerregistry's in-memory registry, which the test pushes the injector's image and chart to.
module thanos-sidecar-injector/test/cluster/registry

go 1.25.0

tool github.com/google/go-containerregistry/cmd/registry

require github.com/google/go-containerregistry v0.22.1 // indirect
