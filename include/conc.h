/* conc.h - umbrella header: every public conc module. */
#ifndef CONC_H
#define CONC_H

#include "conc/version.h"
#include "conc/error.h"
#include "conc/base.h"
#include "conc/thread.h"
#include "conc/sync.h"
#include "conc/future.h"
#include "conc/task.h"
#include "conc/executor.h"
#include "conc/thread_pool.h"
#include "conc/progress.h"
#include "conc/shm.h"
#include "conc/process.h"
#include "conc/process_pool.h"
#include "conc/queue.h"
#include "conc/coro.h"
#include "conc/chan.h"
#include "conc/net.h"

#endif
