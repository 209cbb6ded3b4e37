module mlos.dev/c-tests/goplugin

go 1.19
