"""Everything that touches the file system: run logs, law files and the law catalogue, Hugging Face config.json,
price tables, JSON reading and output-path checks. The core (laws, fitting, memory, planner) takes objects and
never opens a file."""
