"""Unit tests of the control plane's pure parts."""
