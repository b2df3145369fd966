"""The parts of ``run_parasol`` (the public face is :mod:`parasol_hybrid.launcher`), one job per module.

Bottom to top (each imports only those above it in this list):

- :mod:`.output`     the launcher's own lines (``emit``) and mpiexec's output forwarded through pipes
- :mod:`.procs`      the job's processes: found by environment variable in ``/proc``, signalled,
  tied to the launcher's life
- :mod:`.command`    what the ranks are started with: the mpiexec argv and their environment
- :mod:`.entry`      importing the entry script (without MPI) to read its algorithm's config keys
- :mod:`.cleanup`    removing leftovers: MPICH files, segments of ended jobs (``--cleanup``)
- :mod:`.ranks`      the ranks as the launcher sees them: registrations, the first to end, why the job failed
- :mod:`.supervisor` one mpiexec run: start, forward signals and output, end every process of the job
- :mod:`.cli`        the argparse command line and ``main``
"""
