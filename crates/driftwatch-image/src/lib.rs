//! Is this in the image? Overlay layers, content verdicts, package databases
