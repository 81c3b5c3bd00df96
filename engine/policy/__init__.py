"""Policy tables: the model (``model``), the semantic checks (``checks``), loading from YAML
(``load``), the set of tables in force by region and date (``policyset``) and the compiled
array form the kernel reads (``compiled``, its row tables ``kernelrows``)."""
