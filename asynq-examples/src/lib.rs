//! Data sources and page renderers for the asynq examples.
