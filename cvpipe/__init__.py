"""The cvpipe application: the command line (:mod:`cvpipe.cli`), what its commands do
(:mod:`cvpipe.commands`), ``make demo`` (:mod:`cvpipe.demo`) and the report plots
(:mod:`cvpipe.reports`). The library it drives is :mod:`pipeline`; the service, :mod:`service`."""
