"""Where images come from: registries, OCI layouts, docker-archive tarballs, directories."""
