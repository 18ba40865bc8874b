#ifndef OCIRUN_DEVICES_H
#define OCIRUN_DEVICES_H
#endif
