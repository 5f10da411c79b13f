//! End-to-end tests arrive with the widget.
