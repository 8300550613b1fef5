// Hand-written for the go.mod parser's tests: every directive it reads or ignores.
module example.com/cli

go 1.21

toolchain go1.21.5

require (
	github.com/spf13/cobra v1.8.0
	golang.org/x/sys v0.15.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	"gopkg.in/yaml.v3" v3.0.1 // indirect
)

require example.com/internal/shared v0.0.0-00010101000000-000000000000

require golang.org/x/crypto v0.16.0

require golang.org/x/net v0.19.0

replace example.com/internal/shared => ../shared

// A replacement naming the old version wins over one that does not.
replace golang.org/x/crypto v0.16.0 => github.com/my/fork-of-x v0.3.1

replace golang.org/x/crypto => golang.org/x/crypto v0.17.0

// Applies to another version only.
replace golang.org/x/net v0.18.0 => golang.org/x/net v0.20.0

exclude golang.org/x/sys v0.14.0

retract (
	v1.0.0 // published by mistake
	[v1.1.0, v1.2.0]
)

godebug default=go1.21
