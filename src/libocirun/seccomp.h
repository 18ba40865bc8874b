#ifndef OCIRUN_SECCOMP_H
#define OCIRUN_SECCOMP_H
#endif
