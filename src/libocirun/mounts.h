#ifndef OCIRUN_MOUNTS_H
#define OCIRUN_MOUNTS_H
#endif
