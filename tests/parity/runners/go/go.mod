module github.com/baton-runtime/baton/tests/parity/runners/go

go 1.19

require github.com/baton-runtime/baton/go v0.0.0

replace github.com/baton-runtime/baton/go => ../../../../go
