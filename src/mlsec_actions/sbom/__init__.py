"""The CycloneDX ML-BOM: `bom` builds and validates it, `modelcard` reads the model card, `depfiles` the
Python dependency declarations. Nothing heavy is imported here: `mlsec` start-up imports the stage."""
