module github.com/baton-runtime/baton/go

go 1.19
