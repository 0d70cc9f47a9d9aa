// VFIOMigration module: see docs/architecture.md for what lives here.
