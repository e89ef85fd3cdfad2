// Where the pod template sits in each workload kind the offline CLI understands.

/** JSON Pointer of the pod (template) inside an object of this kind; undefined: not a workload. */
export function podPointer(kind: string): string | undefined {
  switch (kind) {
    case 'Pod':
      return '';
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job':
      return '/spec/template';
    case 'CronJob':
      return '/spec/jobTemplate/spec/template';
    case 'PodTemplate':
      return '/template';
    default:
      return undefined;
  }
}
