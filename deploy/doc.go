// Package deploy holds no code. Its tests keep the deployment files
// (Dockerfile, docker-compose.yml, deploy/compose, deploy/kubernetes)
// consistent with the binaries: every flag and ROTOR_* variable they pass
// must be one the binary's --help lists, every path they pass must be in a
// volume the container mounts, and the compose CA must really start on
// PostgreSQL with a SoftHSM2 token and issue a certificate. The alert rules
// (deploy/prometheus) pass promtool's checks and unit tests, and they and
// the Grafana dashboard (deploy/grafana) name only series a real rotor-ca
// and rotor-agent export.
package deploy
