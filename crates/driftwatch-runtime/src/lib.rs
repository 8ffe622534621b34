//! Container identity (cgroups, mountinfo) and metadata from container engines
