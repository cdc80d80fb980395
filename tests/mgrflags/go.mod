// Reference for the differential test of sysbox-mgr's command line: urfave/cli at the version
// sysbox-mgr's go.mod pins.
module sysbox-ro-webhook/tests/mgrflags

go 1.22

require github.com/urfave/cli v1.22.14

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.2 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
)
