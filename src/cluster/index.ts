// cluster: several nodes sharing one registry through etcd. cluster.ts is the adapter that runs it: publisher.ts
// publishes this node's instances on a lease, replica.ts keeps the others' in the registry, liveness.ts says whether
// etcd is in reach, preservation.ts decides when mass expiry is an etcd outage, not a failure of the nodes; etcd.ts,
// lease.ts and watch.ts talk to etcd. Loaded only with --store etcd (etcd3 and grpc cost ~0.3 s at start).
export { EtcdCluster, type ClusterOptions, type ClusterState, type ClusterStatus } from "./cluster.js";
export type { SelfPreservationSettings } from "./preservation.js";
