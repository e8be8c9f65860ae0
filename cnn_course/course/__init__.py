"What the lessons use: exercises and their checks, lesson data, the learner version, and widgets."
