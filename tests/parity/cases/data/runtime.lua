
error("from runtime")
