// Placeholder translation unit for a module or PCH holder with no sources yet.
