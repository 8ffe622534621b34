//! Kernel sensors: loads the BPF programs, reads their ring buffers, decodes raw events
