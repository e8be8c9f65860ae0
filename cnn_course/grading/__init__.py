"Grading without running student code: notebooks read as data, projects and lessons of a class, gradebooks, LMS."
