//! Edges of get -o, watch, export/import and edit.
