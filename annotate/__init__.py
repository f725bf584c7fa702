"""Stage 2: Label Studio — labelling config, pre-annotated tasks, exports, checks, agreement."""
