module astrolens.local/release/scripts/trivy-db

go 1.26

require (
	github.com/aquasecurity/bolt-fixtures v0.0.0-20200903104109-d34e7f983986
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/goccy/go-yaml v1.19.0 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
