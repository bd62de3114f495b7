"""mlsec-actions: MLSecOps and DevSecOps pipeline stages that emit SARIF."""

__version__ = "0.1.0"
